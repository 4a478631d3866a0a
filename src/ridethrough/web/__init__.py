"""What the outside world reads: the status page, Statuspage-compatible JSON, feeds, badges,
/metrics, the incident admin API and webhooks. Reads health state; never judges it."""
