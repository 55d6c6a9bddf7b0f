"""openapi.yaml is valid OpenAPI 3.1, its examples fit its schemas, and it stays in step with template.yaml: every
route of the template is described, and each operation's local server is the function that serves it."""

from __future__ import annotations

import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from cfn_template import load_template
from conftest import REPO_ROOT

OPENAPI = REPO_ROOT / "openapi.yaml"
TEMPLATE = REPO_ROOT / "template.yaml"
LOCAL_FUNCTION_PREFIX = "http://127.0.0.1:9000/lambda-url/"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(OPENAPI.read_text())


def all_template_routes() -> list[tuple[str, str, str]]:
    """(method, path, binary) of every API Gateway route that template.yaml attaches to a function."""
    routes = []
    for function in load_template(TEMPLATE).functions():
        for _, properties in function.events_of_type("HttpApi", "Api"):
            routes.append((str(properties["Method"]).lower(), str(properties["Path"]), function.require_binary()))
    return routes


def template_routes() -> list[tuple[str, str, str]]:
    """The routes an operation serves: all but the `ANY` routes, which only answer 405 for a path's other methods."""
    return [route for route in all_template_routes() if route[0] != "any"]


def url_functions() -> list[str]:
    """The binaries of functions reached through their own function URL instead of API Gateway."""
    return [f.require_binary() for f in load_template(TEMPLATE).functions() if "FunctionUrlConfig" in f.properties]


def local_binaries(operation: dict) -> set[str]:
    return {
        server["url"].removeprefix(LOCAL_FUNCTION_PREFIX)
        for server in operation.get("servers", [])
        if server["url"].startswith(LOCAL_FUNCTION_PREFIX)
    }


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def test_the_file_is_valid_openapi_3_1(spec):
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_the_template_has_routes_to_check():
    assert template_routes(), "template.yaml attaches no HttpApi route to a function; this test would check nothing"


@pytest.mark.parametrize("method, path, binary", template_routes())
def test_every_route_of_the_template_is_described_with_its_local_function(spec, method, path, binary):
    operation = spec["paths"].get(path, {}).get(method)
    assert operation is not None, f"openapi.yaml does not describe {method.upper()} {path} (template.yaml has it)"
    assert local_binaries(operation) == {binary}, (
        f"{method.upper()} {path} is served by {binary}: its local server should be {LOCAL_FUNCTION_PREFIX}{binary}"
    )


def test_the_webhook_is_described_on_its_function_url(spec):
    webhooks = [(path, method, op) for path, method, op in operations(spec) if local_binaries(op) & set(url_functions())]
    assert url_functions() and webhooks, "the function-URL webhook is not described in openapi.yaml"
    for _, _, operation in webhooks:
        assert operation.get("security") == [{"resmanSignature": []}], "the webhook is signed, not keyed"


def _media_examples(spec: dict):
    """(where, schema, example) for every example attached to a request or response body."""
    for path, method, operation in operations(spec):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(f"response {status}", response) for status, response in operation.get("responses", {}).items()]
        for label, body in bodies:
            if "$ref" in body:
                body = spec["components"]["responses"][body["$ref"].rsplit("/", 1)[-1]]
            for media in body.get("content", {}).values():
                examples = [media["example"]] if "example" in media else []
                examples += [example["value"] for example in media.get("examples", {}).values()]
                for example in examples:
                    yield f"{method.upper()} {path} {label}", media["schema"], example


def test_every_example_fits_its_schema(spec):
    checked = 0
    for where, schema, example in _media_examples(spec):
        # The schema's $refs point into the document: give the validator the document's components as its root.
        validator = OAS31Validator({**schema, "components": spec["components"]})
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"
        checked += 1
    assert checked >= 10


def test_every_described_path_answers_its_other_methods_with_a_405():
    """API Gateway answers a method no route takes with a bare 404; an `ANY` route per path sends them to a function
    instead, which answers 405 with `Allow` (RFC 9110)."""
    caught = {path for method, path, _ in all_template_routes() if method == "any"}
    served = {path for _, path, _ in template_routes()}
    assert served and served == caught, f"paths without an ANY route: {sorted(served - caught)}"

