"""A ``str`` that templates insert as markup: the ``__html__`` protocol, without markupsafe."""

from __future__ import annotations

from typing_extensions import Self


class SafeHtml(str):
    """HTML that is already escaped where it needs to be, such as the pixel's ``<img>`` tag.

    Jinja2 and MarkupSafe (``markupsafe.escape``), Django (``conditional_escape``) and other
    template engines that honour ``__html__`` render it as it is, instead of escaping it into
    visible text. Anything else sees a plain ``str``; joining it with other text gives a plain
    ``str`` again, which templates escape as usual.
    """

    __slots__ = ()

    def __html__(self) -> Self:
        """This markup, for template engines: it is inserted without escaping."""
        return self
