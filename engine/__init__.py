"""ReplyDesk engine."""
