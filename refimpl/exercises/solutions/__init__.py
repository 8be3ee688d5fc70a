"""Reference solutions of the exercises (see refimpl.exercises): try first, then look."""
