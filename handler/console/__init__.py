"""What the ``pagedrop`` command does for people: submit, status, follow, results, and the
one-sentence errors. ``handler/cli.py`` only parses arguments and calls in here."""
