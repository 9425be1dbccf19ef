"""Remote calls: pending calls with deadlines, dispatch on a worker pool, messages."""
