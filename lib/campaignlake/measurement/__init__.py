"""What campaigns did: behaviour outcomes of treatment and control groups, and their lift."""
