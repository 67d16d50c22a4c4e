"""The Tune page: corrections to a better model with the mouse, jobs run in a child process."""
