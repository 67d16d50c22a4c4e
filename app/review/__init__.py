"""The Review page: doubtful spans walked by keyboard, the span player and the library's strings."""
