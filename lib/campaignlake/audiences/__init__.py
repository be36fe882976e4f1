"""Campaign audiences: campaign files, the audience transforms, exports and their table I/O."""
