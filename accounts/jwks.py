"""`GET /.well-known/jwks.json`: the public keys that verify the tokens (RFC 7517), for
services that check them without any secret. A platform path: the same on every host."""

from __future__ import annotations

from django.utils.cache import patch_cache_control
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts.keys import KEY_ALGORITHMS, published_jwks
from tenants.api import ApiView

# Seconds a client may keep the key set. A verifier meeting an unknown `kid` fetches it
# again, so a rotation is seen at once; a retired key may stay cached this long.
JWKS_MAX_AGE = 300


class JwkSerializer(serializers.Serializer):
    """A public key: `crv` and `x` for Ed25519 (RFC 8037), `n` and `e` for RSA."""

    kty = serializers.ChoiceField(choices=["OKP", "RSA"])
    crv = serializers.ChoiceField(choices=["Ed25519"], required=False)
    x = serializers.CharField(required=False, help_text="Ed25519 public key, base64url.")
    n = serializers.CharField(required=False, help_text="RSA modulus, base64url.")
    e = serializers.CharField(required=False, help_text="RSA public exponent, base64url.")
    kid = serializers.CharField(help_text="The key id tokens carry in their header.")
    use = serializers.ChoiceField(choices=["sig"])
    alg = serializers.ChoiceField(choices=list(KEY_ALGORITHMS))


class JwksSerializer(serializers.Serializer):
    keys = JwkSerializer(many=True)


class JwksView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]
    http_method_names = ["get", "head"]

    def initial(self, request, *args, **kwargs):
        # The method first: another method is a 405 whatever body it carries.
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="jwks",
        tags=["auth"],
        auth=[],
        summary="The public keys of the token signatures (current and previous, by kid)",
        description=(
            'Served on any host. Empty (`{"keys": []}`) when tokens are signed with HS256 '
            "(JWT_ALGORITHM); never a private key or a secret. Cacheable for "
            f"{JWKS_MAX_AGE} s; fetch it again on an unknown `kid`."
        ),
        responses={200: JwksSerializer},
    )
    def get(self, request):
        response = Response(published_jwks())
        patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE)
        return response


jwks = JwksView.as_view()
