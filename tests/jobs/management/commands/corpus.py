import sys

from django.core.management.base import BaseCommand

from tests.scrub_corpus import SHAPES


class Command(BaseCommand):
    help = "Test job: prints every secret shape of tests/scrub_corpus.py, holds some in locals, then fails with some."

    def handle(self, *args, **options):
        # Locals a Sentry event sends with the frame: their repr escapes quotes. (A secret
        # alone in a local, with nothing naming it, would not be found: none is held so.)
        both_quotes = f"""PASSWORD = '{SHAPES[0][2]}' and "x" """
        texts = [text for _, text, _ in SHAPES]
        for number, text in enumerate(texts):
            (sys.stderr if number % 3 else self.stdout).write(text + "\n")
        sys.stdout.flush()
        raise RuntimeError("refused:\n" + "\n".join(texts[:20]) + f"\n{both_quotes}")
