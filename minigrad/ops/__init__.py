"""Differentiable operations, one file per family; each op's forward and backward sit together."""
