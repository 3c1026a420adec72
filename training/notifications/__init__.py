"""Notifications: mail and signed webhooks when a run ends, waits for approval (to staff) or
its evaluation is ready.

`events` queues them after commit from the life cycles (training.lifecycle,
training.evaluation.lifecycle); a django-q2 task (`training.tasks.send_notifications`) writes
the mails and tries each webhook (`send`, `messages`, `webhooks`), so neither a request nor
the runner ever waits for a mail server or a webhook. Users choose on the settings page
(`views`, `services`).
"""
