"""Why a JWT was refused, in the words Envoy's jwt_authn filter replies with (jwt_verify_lib's
status strings, checked against Envoy 1.40), and the HTTP status each one gets."""

from __future__ import annotations

from enum import Enum


class JwtStatus(Enum):
    OK = "OK"
    MISSED = "Jwt is missing"
    NOT_YET_VALID = "Jwt not yet valid"
    EXPIRED = "Jwt is expired"
    BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    HEADER_BAD_BASE64 = "Jwt header is an invalid Base64url encoded"
    HEADER_BAD_JSON = "Jwt header is an invalid JSON"
    HEADER_BAD_ALG = "Jwt header [alg] field is required and must be a string"
    HEADER_UNSUPPORTED_ALG = "Jwt header [alg] is not supported"
    HEADER_BAD_KID = "Jwt header [kid] field is not a string"
    PAYLOAD_BAD_BASE64 = "Jwt payload is an invalid Base64url encoded"
    PAYLOAD_BAD_JSON = "Jwt payload is an invalid JSON"
    ISS_NOT_STRING = "Jwt payload [iss] field is not a string"
    SUB_NOT_STRING = "Jwt payload [sub] field is not a string"
    IAT_NOT_INTEGER = "Jwt payload [iat] field is not an integer"
    NBF_NOT_INTEGER = "Jwt payload [nbf] field is not an integer"
    EXP_NOT_INTEGER = "Jwt payload [exp] field is not an integer"
    AUD_NOT_STRINGS = "Jwt payload [aud] field is not a string or string list"
    SIGNATURE_BAD_BASE64 = "Jwt signature is an invalid Base64url encoded"
    UNKNOWN_ISSUER = "Jwt issuer is not configured"
    AUDIENCE_NOT_ALLOWED = "Audiences in Jwt are not allowed"
    VERIFICATION_FAILS = "Jwt verification fails"
    NO_MATCHING_KEY = "Jwks doesn't have key to match kid or alg from Jwt"

    @property
    def http_status(self) -> int:
        """Envoy answers a wrong audience with 403, every other failure with 401."""
        return 403 if self is JwtStatus.AUDIENCE_NOT_ALLOWED else 401

    @property
    def body(self) -> bytes:
        return self.value.encode()
