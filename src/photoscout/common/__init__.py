"""What every package shares, and depends on nothing of photoscout's: ``errors`` (one exception type with an HTTP
status and an exit code), ``progress`` (the protocol long operations report to) and ``imaging`` (opening an image the
same way everywhere)."""
