import os
import sys

from django.core.management.base import BaseCommand

# Each secret is distinct, so a test can look for every one of them anywhere.
SECRETS = {
    "password": "hunter2-pw-0001",
    "url": "s3cr3t-url-0002",
    "token": "tok-abcdef-0003",
    "bearer": "eyJbearer.0004",
    "aws": "AKIAIOSFODNN70000005",
    "local": "local-only-0006",
    "api_key": "apikey-0007",
}


class Command(BaseCommand):
    help = "Test job: prints secrets in the usual shapes, holds one in a local, then fails with one."

    def handle(self, *args, **options):
        db_password = SECRETS["local"]  # a local variable Sentry would send with the stack
        self.stdout.write(f"connecting with password={SECRETS['password']}")
        print(f"DATABASE_URL=postgres://app:{SECRETS['url']}@db.internal:5432/site")
        print(f"Authorization: Bearer {SECRETS['bearer']}")
        sys.stderr.write(f'{{"api_key": "{SECRETS["api_key"]}", "aws": "{SECRETS["aws"]}"}}\n')
        os.environ.get("NOTHING", db_password)
        raise RuntimeError(f"login refused for token={SECRETS['token']}")
