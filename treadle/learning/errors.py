"""Errors raised by the learning library."""


class RecipeError(ValueError):
    """A recipe that cannot be used with the given schema.

    The message always starts with the position of the problem
    (``outputs[2] at column 14: ...``) so the API layer can hand it to the
    user unchanged as the ``InvalidInputException`` message
    (docs/behaviour.md, "Recipes").
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
