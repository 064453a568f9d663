from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crontabber", "0007_log_start_lag"),
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
        migrations.AddField(
            model_name="log",
            name="since",
            field=models.DateTimeField(blank=True, help_text="The oldest slot the row covers.", null=True),
        ),
        migrations.AddField(
            model_name="log",
            name="covers",
            field=models.PositiveIntegerField(default=1, help_text="How many slots of the schedule the row covers."),
        ),
    ]
