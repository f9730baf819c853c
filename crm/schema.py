"""OpenAPI description of the API's authentication (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "crm.auth.ApiKeyAuthentication"
    name = ["bearer", "apiKeyHeader", "basic"]

    def get_security_requirement(self, auto_schema):
        # Any one of the three works: alternatives (a list of requirements), not one requirement naming all three.
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key, or a JWT from POST /uauth/v2/auth/login/profile.",
            },
            {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "An API key."},
            {
                "type": "http",
                "scheme": "basic",
                "description": "The API key as the user name (empty password) or as the password.",
            },
        ]
