"""PikPak's error body, as the real service sends it, and the errors the emulator raises."""

from __future__ import annotations

from typing import Any

from .http import Response


class ApiError(Exception):
    """An error in PikPak's shape: error, error_code, error_url, error_description, details."""

    def __init__(
        self,
        status: int,
        error: str,
        code: int,
        description: str = "",
        reason: str | None = None,
        message: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {error} {code}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description or error
        self.reason = reason or self.description
        self.message = message
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.reason,
                "domain": "",
                "metadata": {},
            }
        ]
        if self.message:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en",
                    "message": self.message,
                }
            )
        return {
            "error": self.error,
            "error_code": self.code,
            "error_url": "",
            "error_description": self.description,
            "details": details,
        }

    def response(self) -> Response:
        return Response.json(self.body(), self.status, self.headers)


# The errors PikPak is known to send, as factories (descriptions as observed where known).


def bad_request(description: str) -> ApiError:
    return ApiError(400, "invalid_argument", 3, description)


def unauthenticated() -> ApiError:
    return ApiError(
        401,
        "unauthenticated",
        16,
        "Unauthenticated",
        message="Your session has expired, please log in again",
    )


def captcha_invalid_drive() -> ApiError:
    return ApiError(
        400,
        "captcha_invalid",
        9,
        "Verification code is invalid",
        message="The safety verification has failed. Please try again",
    )


def captcha_invalid_auth(description: str) -> ApiError:
    return ApiError(
        400,
        "captcha_invalid",
        4002,
        description,
        message="The safety verification has failed. Please try again",
    )


def too_frequent(code: int = 4002) -> ApiError:
    name = "captcha_invalid" if code == 4002 else "aborted"
    return ApiError(
        400,
        name,
        code,
        "Aborted - Your operation is too frequent, please try again later",
        message="The safety verification has failed. Please try again",
    )


def invalid_grant(refresh_token: str) -> ApiError:
    # PikPak echoes the refused token in the description; a client must never log this body.
    reason = (
        "invalid refresh token for it may be has been refreshed by other process, "
        f"more info redis: nil, RefreshToken {refresh_token}"
    )
    return ApiError(
        400,
        "invalid_grant",
        4126,
        reason,
        reason=reason,
        message="The refresh token is incorrect or expired",
    )


def not_found(what: str = "file") -> ApiError:
    return ApiError(
        404, "file_not_found", 5, f"The {what} does not exist", message="File not found"
    )


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_requests",
        8,
        "Too many requests, please try again later",
        headers=[("Retry-After", str(retry_after))],
    )
