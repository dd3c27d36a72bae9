"""The store janitor: erases deleted tasks' objects again once their deletion settled, and, where the
object store has no lifecycle rules of its own, deletes objects past their TTL."""
