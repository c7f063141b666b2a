"""The ABAC policy language: parser, printer, evaluator, explain and policy stores."""
