"""Authentication: the token endpoint, signing a caller in on every transport, and the throttles."""
