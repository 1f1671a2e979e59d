"""The GraphQL front (Strawberry): the same service layer and rules as REST."""
