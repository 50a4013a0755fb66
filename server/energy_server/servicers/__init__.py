"""gRPC servicers: translate requests, call the domain, translate results."""
