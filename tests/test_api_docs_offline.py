"""The API docs work at a door with no internet: every file Swagger UI needs comes from the
app (drf-spectacular-sidecar), so the page loads without one request to another host."""

import pytest


@pytest.mark.browser
def test_the_api_docs_load_with_no_request_to_another_host(asgi_server, browser):
    context = browser.new_context()
    requested: list[str] = []
    outside: list[str] = []

    def watch(route):
        url = route.request.url
        requested.append(url)
        if url.startswith(asgi_server) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()  # as a door without internet would

    context.route("**/*", watch)
    page = context.new_page()
    page.goto(f"{asgi_server}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # the schema was read and drawn
    page.wait_for_load_state("networkidle")
    assert outside == []
    assert any("/api/schema/" in url for url in requested)
    assert any("swagger-ui" in url and url.endswith(".js") for url in requested)  # the app's own copy
    context.close()
