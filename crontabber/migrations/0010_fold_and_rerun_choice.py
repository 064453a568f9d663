from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crontabber", "0009_schedule_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="rerun_failed_and_missing",
            field=models.BooleanField(
                default=False, help_text="Re-run only the slots of the range that failed or were never attempted."
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="rerun_newest_first",
            field=models.BooleanField(default=False, help_text="Re-run the newest slot of the range first."),
        ),
    ]
