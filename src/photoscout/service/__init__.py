"""The always-on service of a library: what ``photoscout serve`` runs beside the web server and ``photoscout run``
runs alone, on a NAS or any machine left on.

    lock.py      one service per library (``data/service.lock``); who holds it
    runner.py    the loop: watch, rescan, resume and run model jobs, restart the embedded database, quiet hours
    watcher.py   which root changed (watchfiles: inotify), in a thread
    unit.py      the systemd unit ``photoscout service install`` writes
"""
