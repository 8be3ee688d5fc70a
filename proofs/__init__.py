"""The proofs (Markdown files beside this one), shipped as ``refimpl.proofs`` so that
``refimpl tutorials`` renders them into the course folder after ``pip install .``."""
