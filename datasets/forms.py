"""Dataset forms: validate and normalise input, no side effects."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from datasets.captions import TOOLS
from datasets.models import Dataset, Visibility


class DatasetForm(forms.Form):
    """Name and training settings of a dataset."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    trigger_word = forms.CharField(
        max_length=100,
        required=False,
        help_text=Dataset._meta.get_field("trigger_word").help_text,
    )
    repeats = forms.IntegerField(min_value=1, max_value=1000, initial=10)
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE)

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean_trigger_word(self) -> str:
        word = " ".join(self.cleaned_data["trigger_word"].split())
        if any(ch in word for ch in "/\\"):
            raise forms.ValidationError("The trigger word cannot hold slashes.")
        return word


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files at once."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    """Images (png, jpg, webp, bmp) and .zip archives, several at once."""

    files = MultipleFileField(
        help_text="PNG, JPEG, WebP or BMP images, or .zip archives (captions as .txt inside)."
    )

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        limit = settings.LORASTUDIO_MAX_ZIP_MB * 10**6
        for upload in files:
            if upload.name.lower().endswith(".zip") and upload.size > limit:
                raise forms.ValidationError(
                    f"{upload.name} is over the {settings.LORASTUDIO_MAX_ZIP_MB} MB archive limit."
                )
        return files


class CaptionToolForm(forms.Form):
    """One bulk caption tool with its arguments."""

    tool = forms.ChoiceField(choices=[(t, t) for t in TOOLS])
    find = forms.CharField(required=False, strip=False, label="Find")
    replace = forms.CharField(required=False, strip=False, label="Replace with / fill text")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # No caption may be longer than the limit, so neither may the text that fills one or
        # is looked for in one (read here, not at import, so the setting can change in tests).
        limit = settings.LORASTUDIO_MAX_CAPTION_CHARS
        for name in ("find", "replace"):
            field = self.fields[name]
            field.max_length = limit
            field.validators.append(MaxLengthValidator(limit))
            field.widget.attrs["maxlength"] = str(limit)

    def clean(self):
        data = super().clean()
        if data.get("tool") == "replace" and not data.get("find"):
            raise forms.ValidationError("Enter the text to find.")
        return data
