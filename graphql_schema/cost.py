"""The estimated cost of a GraphQL operation, from its document and variables alone.

Each field counts 1, times the size of every list around it. A connection's
``edges`` holds as many nodes as its field's ``first`` asks for (a literal or
a variable; REST's default page when left out; the largest page when the
value is out of range, which the resolver then refuses anyway). A list that
takes no ``first`` has the size declared in ``LIST_SIZES``.

Fragments, named or inline, count as if every one applied, and ``@skip`` and
``@include`` are ignored: neither makes the estimate smaller than what runs.
Aliases count as written, even where graphql-core would merge two of them.
``__typename`` costs nothing (no resolver, no database); ``__schema`` and
``__type`` count 1 each and what they select nothing, as the schema's size,
not the caller, bounds them and they are served from memory.

``expanded_size`` is the other measure of a document kept here: how many
selections it holds with its fragments spread out, which is what the depth and
alias limits walk.

Nothing here runs a resolver or touches the database. Each named fragment's
cost is worked out once (per type and page it is spread into) and multiplied
where it is used, so the estimate takes time in proportion to the document's
size however deeply fragments spread each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)

from inventory.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from inventory.purchase_orders.schemas import MAX_LINES as PURCHASE_ORDER_LINES
from inventory.reservations.schemas import MAX_LINES
from inventory.sales_orders.schemas import MAX_LINES as SALES_ORDER_LINES

PAGE_ARGUMENT = "first"
"""The argument of a connection field that sizes the ``edges`` list below it."""

PAGE_LIST = "edges"

LIST_SIZES: Mapping[str, int] = {
    # One level per warehouse the product is stocked in. Warehouses have no cap,
    # but only managers create them, so their number is the operator's choice,
    # not the caller's: the estimate assumes at most this many.
    "Product.stockLevels": 50,
    # A transfer is always two ledger entries: out of one warehouse, into another.
    "Transfer.movements": 2,
    # One per product counted. A count of a whole warehouse may hold thousands; most
    # cover a shelf or a category, and a large one is read with a small page of counts.
    "Count.lines": 200,
    "FinishedCount.lines": 200,
    # A reservation holds at most MAX_LINES lines; a shortage names at most each of them.
    "Reservation.lines": MAX_LINES,
    "Shortage.errors": MAX_LINES,
    # A sales order has at most SALES_ORDER_LINES lines; a refused shipment names at most each.
    "SalesOrder.lines": SALES_ORDER_LINES,
    "NotAllocated.errors": SALES_ORDER_LINES,
    # One per level holding stock in the selection. A whole catalogue across every
    # warehouse may hold more; the estimate assumes a warehouse's or a product range's
    # worth, and a caller after the whole report narrows it (or reads REST's).
    "StockValuation.lines": 1000,
    # A purchase order carries at most PURCHASE_ORDER_LINES lines; an over-receipt names at most
    # each line of the receipt, which names at most as many.
    "PurchaseOrder.lines": PURCHASE_ORDER_LINES,
    "OverReceipt.errors": PURCHASE_ORDER_LINES,
    # One per refused input field (the largest input has 8), with room to spare.
    "ValidationFailed.errors": 10,
}
"""The size of every list field that takes no ``first``: the one place they are declared.

A list of objects missing here (a test checks there is none) counts as the
largest page, ``MAX_LIMIT``. Lists of scalars select nothing below them, so
their size changes no estimate.
"""

FREE_FIELDS = frozenset({"__typename"})
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation the document and ``operation_name`` name; 0 if none.

    Expects a document that passed validation (fields exist, fragments do not cycle).
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = _root_type(schema, operation.operation)
    if root is None:
        return 0
    return _Estimate(schema, document, operation, variables or {}).selections(
        operation.selection_set, root, page=None
    )


def list_fields_without_size(schema: GraphQLSchema) -> list[str]:
    """``Type.field`` of every list of objects that is neither ``edges`` nor in ``LIST_SIZES``."""
    missing = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, definition in type_.fields.items():
            returns = definition.type
            if isinstance(returns, GraphQLNonNull):
                returns = returns.of_type
            if (
                isinstance(returns, GraphQLList)
                and isinstance(get_named_type(returns), GraphQLObjectType)
                and name != PAGE_LIST
                and f"{type_.name}.{name}" not in LIST_SIZES
            ):
                missing.append(f"{type_.name}.{name}")
    return missing


def expanded_size(document: DocumentNode) -> int:
    """The selections (fields, fragment spreads, inline fragments) of the document's
    operations once every fragment spread is replaced by its fragment.

    The depth and alias limits follow fragments, so they walk this many nodes: a few
    hundred tokens of fragments that each spread the next twenty times make it
    trillions. Counted here in time proportional to the document, before they run.
    Works on any parsed document (an unknown fragment adds nothing; a cycle adds
    nothing more the second time round).
    """
    definitions = _fragment_definitions(document)
    sizes: dict[str, int] = {}

    def size(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            total += 1
            if isinstance(selection, FragmentSpreadNode):
                total += fragment(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                total += size(selection.selection_set)
        return total

    def fragment(name: str) -> int:
        if name not in sizes:
            sizes[name] = 0
            if (definition := definitions.get(name)) is not None:
                sizes[name] = size(definition.selection_set)
        return sizes[name]

    return sum(
        size(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


def _fragment_definitions(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _root_type(schema: GraphQLSchema, operation: OperationType) -> GraphQLObjectType | None:
    if operation is OperationType.QUERY:
        return schema.query_type
    if operation is OperationType.MUTATION:
        return schema.mutation_type
    return schema.subscription_type


@dataclass
class _Estimate:
    schema: GraphQLSchema
    document: DocumentNode
    operation: OperationDefinitionNode
    variables: Mapping[str, Any]
    _costs: dict[tuple[str, str, int | None], int] = field(default_factory=dict)
    _definitions: dict[str, FragmentDefinitionNode] = field(init=False)

    def __post_init__(self) -> None:
        self._definitions = _fragment_definitions(self.document)

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, page: int | None
    ) -> int:
        """The cost of one instance of ``parent`` with this selection, not multiplied by any
        list around it; ``page`` is the page size a connection field above asked for."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner or parent, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, parent, page)
        return total

    def fragment(self, name: str, parent: GraphQLNamedType, page: int | None) -> int:
        key = (name, parent.name, page)
        if key not in self._costs:
            self._costs[key] = 0  # a cycle (validation refuses them) then adds nothing
            if (definition := self._definitions.get(name)) is not None:
                inner = self.schema.get_type(definition.type_condition.name.value) or parent
                self._costs[key] = self.selections(definition.selection_set, inner, page)
        return self._costs[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType, page: int | None) -> int:
        name = node.name.value
        if name in FREE_FIELDS:
            return 0
        fields = getattr(parent, "fields", None)
        if name in INTROSPECTION_ROOTS or not fields or name not in fields:
            return 1
        definition = fields[name]
        returns = definition.type
        if isinstance(returns, GraphQLNonNull):
            returns = returns.of_type
        size = 1
        if isinstance(returns, GraphQLList):
            if name == PAGE_LIST and page is not None:
                size = page
            else:
                size = LIST_SIZES.get(f"{parent.name}.{name}", MAX_LIMIT)
        inner_page = self.page_size(node) if PAGE_ARGUMENT in definition.args else None
        below = self.selections(node.selection_set, get_named_type(returns), inner_page)
        return 1 + size * below

    def page_size(self, node: FieldNode) -> int:
        """The ``first`` of a connection field: a literal, a variable, or its default."""
        argument = next((a for a in node.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        value: Any = None
        if argument is not None:
            value = self.value(argument.value)
        if value is None:
            return DEFAULT_LIMIT
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
            # Out of range or not a number: refused when it runs; until then, the most it could be.
            return MAX_LIMIT
        return value

    def value(self, node: ValueNode) -> Any:
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return self.variables[name]
            declared = next(
                (
                    d
                    for d in self.operation.variable_definitions or ()
                    if d.variable.name.value == name
                ),
                None,
            )
            if declared is not None and declared.default_value is not None:
                return self.value(declared.default_value)
            return None
        if isinstance(node, NullValueNode):
            return None
        return node  # not a number: page_size takes it as out of range
