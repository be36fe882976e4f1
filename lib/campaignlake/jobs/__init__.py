"""The job layer: every job declared once (:mod:`.registry`), its command line (:mod:`.cli`)
and ``run_pipeline`` (:mod:`.pipeline`)."""
