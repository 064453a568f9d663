from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crontabber', '0006_log_rerun'),
    ]

    operations = [
        migrations.AddField(
            model_name='log',
            name='start_lag',
            field=models.FloatField(blank=True, help_text='Seconds from its slot to its start: only for a slot on time, not a backlog, retry or re-run.', null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='start_lag',
            field=models.FloatField(blank=True, help_text="Seconds from its latest on-time slot to the start of that slot's attempt.", null=True),
        ),
        migrations.AddField(
            model_name='control',
            name='asked_at',
            field=models.DateTimeField(blank=True, help_text='When an operator last asked the runners for something: a sleeping loop wakes.', null=True),
        ),
    ]
