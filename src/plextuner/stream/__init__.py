"""Stream engine: tuner and connection budgets, proxy, failover."""
