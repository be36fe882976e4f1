"""Job entry points: each module's ``main(argv)`` is a console script and, through the thin file
of the same name in ``jobs/``, a spark-submit target."""
