"""The state API's data: Ray's schemas, rows from the head's answers, the timeline's trace; pure conversions."""
