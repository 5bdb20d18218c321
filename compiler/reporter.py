"""Progress for people, on stderr (results go to stdout): stage lines and streamed build output."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape


@dataclass
class Reporter:
    """Passed to the stages that talk; ``quiet`` keeps only warnings."""

    quiet: bool = False
    # emoji=False: a reference such as 'azureml:m:1' must print as written, not as ':m:' -> an emoji
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True, emoji=False))

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold cyan]pkgc[/] {escape(message)}")

    def detail(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"     {escape(message)}", style="dim")

    def build_output(self, text: str) -> None:
        if not self.quiet:
            for line in text.splitlines():
                if line.strip():
                    self.console.print(f"  | {escape(line)}", style="dim")

    def warn(self, message: str) -> None:
        self.console.print(f"[bold yellow]pkgc warning:[/] {escape(message)}")
