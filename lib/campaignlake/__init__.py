"""campaignlake: clickstream and CRM exports to Delta tables, models and campaign audiences."""
