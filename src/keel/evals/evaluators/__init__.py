"""Built-in evaluators; each module exposes ``EvaluatorPlugin`` objects for the entry points."""
