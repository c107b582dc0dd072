"""Guide data: XMLTV ingest, matching, pruning, per-device guide.xml."""
