from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Test job: prints two lines, then raises."

    def handle(self, *args, **options):
        self.stdout.write("about to fail")
        print("printed, not written")
        raise RuntimeError("boom")
