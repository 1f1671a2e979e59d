"""graphql_schema/schema.graphql is the SDL client code generators read: it must be the code's."""

from __future__ import annotations

from graphql import GraphQLEnumType
from graphql import build_schema as parse_sdl

from graphql_schema.sdl import SDL_FILE, sdl


def test_schema_file_is_the_schema_the_code_builds():
    written = SDL_FILE.read_text(encoding="utf-8")
    assert written == sdl(), (
        f"{SDL_FILE.name} differs from the schema in the code: run `make schema` "
        "(python -m graphql_schema.sdl) and commit the file"
    )


def test_schema_file_is_valid_sdl_with_the_product_sort():
    schema = parse_sdl(SDL_FILE.read_text(encoding="utf-8"))
    sort = schema.query_type.fields["products"].args["sort"] if schema.query_type else None
    assert sort is not None
    assert str(sort.type) == "ProductSort!"
    product_sort = schema.type_map["ProductSort"]
    assert isinstance(product_sort, GraphQLEnumType)
    assert set(product_sort.values) == {"SKU", "NAME", "UPDATED_AT", "UPDATED_AT_DESC"}
