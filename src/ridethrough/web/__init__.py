"""What the outside world reads: the status page, Statuspage-compatible JSON, feeds, badges,
/metrics and the incident admin API. Reads health through ``health.reader`` only; never
judges it, and never sends anything (webhooks live with health: ``health.webhooks``)."""
