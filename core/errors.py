"""The core's exceptions.

Everything the core raises on purpose derives from `AssistantError`. `UserFacingError`s carry a message
written for the person who asked (see `core.messages`); adapters show it as-is. Anything else is a bug or
an outage: adapters log it with a traceback and show a short generic message instead.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Root of every exception the core raises deliberately."""


class UserFacingError(AssistantError):
    """An error whose message is safe and useful to show to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


class InvalidSpecError(UserFacingError):
    """The uploaded file is not a spec we can read (malformed, empty, binary, unsupported)."""


class UnreadableSpecError(InvalidSpecError):
    """A parser failed on the file in a way nobody planned for: the traceback is logged, the user told plainly."""


class FileTooLargeError(UserFacingError):
    """The uploaded file is over `MAX_FILE_SIZE_MB`."""


class ParseTimeoutError(UserFacingError):
    """Reading the uploaded file took longer than `PARSE_TIMEOUT_SECONDS`; the parse was stopped."""


class ParseMemoryError(UserFacingError):
    """Reading the uploaded file needed more memory than `PARSE_MEMORY_MB`; the parse was stopped."""


class FileTypeNotAllowedError(UserFacingError):
    """The uploaded file's type is not in `ALLOWED_FILE_TYPES`."""


class SpecNotFoundError(UserFacingError):
    """A named spec is not indexed in this workspace."""


class NothingIndexedError(UserFacingError):
    """The workspace has no specs yet, so there is nothing to answer from."""


class RateLimitedError(UserFacingError):
    """The user asked too often; `retry_after` says when to try again (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(UserFacingError):
    """The user may not change this spec (only its uploader and workspace admins may)."""


class QuotaExceededError(UserFacingError):
    """The workspace already holds `MAX_SPECS_PER_WORKSPACE` specs."""


class BusyError(UserFacingError):
    """The assistant is at capacity and could not queue the request."""


class StoreUnavailableError(UserFacingError):
    """The vector store (a Chroma server) cannot be reached right now; nothing was changed, trying again later works."""


class ConfigError(AssistantError):
    """Configuration is invalid; the message names the variable."""


class BackupError(UserFacingError):
    """A backup could not be written, or an archive was refused for restore (corrupt, truncated, foreign)."""


class DataDirBusyError(AssistantError):
    """DATA_DIR's lock is held: a bot runs on it (a restore must wait) or a restore is replacing it (a bot must)."""


class WorkspaceNotFoundError(UserFacingError):
    """A named workspace has no specs in the registry."""


class SpecNeedsReindexError(UserFacingError):
    """The spec's vectors came from another embedding model, so it is left out of search until re-indexed."""


class OriginalUnavailableError(UserFacingError):
    """A spec's stored original is missing or no longer matches its record, so it cannot be rebuilt from it."""


class CommandUsageError(UserFacingError):
    """A typed command the parser could not read: a missing argument, extra words, an unclosed quote."""


class DiffUnavailableError(UserFacingError):
    """A diff cannot be made: the spec has one version only, or the version asked for is not kept."""


class NothingToCheckError(UserFacingError):
    """A request or response to check holds nothing that can be checked (no curl command, request or body)."""


class OperationNotFoundError(UserFacingError):
    """The request to check matches no operation of the spec(s): its method and path, or the operation it names."""


class SpecNameTakenError(UserFacingError):
    """An upload's name belongs to a spec it may not replace from here (private elsewhere, or shared)."""


class ChannelSettingError(UserFacingError):
    """A channel setting cannot be made here (a private spec outside a chat channel, say)."""


class DiagramError(UserFacingError):
    """A diagram cannot be drawn: not for this kind of spec, no such schema, or the renderer failed."""


class LintUnavailableError(UserFacingError):
    """A spec's quality report cannot be made (its original is gone, or the format has nothing to check)."""
