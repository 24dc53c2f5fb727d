# conf/ — default config and the nginx load-balancer config.
