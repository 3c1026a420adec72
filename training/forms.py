"""The new-run form: dataset, base model, preset and the knobs the preset leaves open.

Cleaning the form plans the run (training.planning.plan_run), so the page shows exactly the
verdict the submit service will reach; `form.plan` holds the plan once the form is valid.
"""

from __future__ import annotations

import uuid

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError

from datasets.models import Dataset
from sdscripts.params import PARAMS, ParamError, bounds, default_for, params_for
from sdscripts.prompts import MAX_SAMPLE_PROMPTS
from training.models import BaseModel, Preset
from training.planning import RunRequest, plan_run
from training.selectors import unavailable_optimizers


def open_params(preset: Preset, *, staff: bool = False) -> list:
    """The knobs a user may set under a preset (staff also get the staff-only ones)."""
    locked = set(preset.locked or ())
    return [
        p for p in params_for(preset.architecture) if p.name not in locked and (staff or p.student)
    ]


def _param_field(preset: Preset, p, *, staff: bool) -> forms.Field:
    initial = (preset.values or {}).get(p.name, default_for(p, preset.architecture))
    rule = None if staff else (preset.bounds or {}).get(p.name)
    lo, hi, choices = bounds(p, preset.architecture, rule)
    help_text = p.help
    if lo is not None or hi is not None:
        help_text += f" ({'' if lo is None else f'{lo:g}'} … {'' if hi is None else f'{hi:g}'})"
    common = {"label": p.name, "help_text": help_text, "initial": initial, "required": False}
    if p.kind == "bool":
        return forms.BooleanField(**common)
    if p.kind == "choice":
        if p.name == "optimizer_type":  # only what some node's sd-scripts can import
            missing = unavailable_optimizers()
            choices = tuple(c for c in choices if c not in missing or c == initial)
        return forms.ChoiceField(choices=[(c, c) for c in choices], **common)
    attrs = {"step": "1" if p.kind == "int" else "any"}
    if lo is not None:
        attrs["min"] = f"{lo:g}"
    if hi is not None:
        attrs["max"] = f"{hi:g}"
    # Text input for floats keeps "1e-4" readable; validate_params does the real checking.
    widget = forms.NumberInput(attrs=attrs) if p.kind == "int" else forms.TextInput(attrs=attrs)
    return forms.CharField(widget=widget, **common)


def chosen_preset(raw) -> Preset | None:
    """The enabled preset a request names (by id), else the first enabled one."""
    presets = Preset.objects.filter(enabled=True)
    if raw:
        try:
            return presets.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            return None
    return presets.first()


class RunForm(forms.Form):
    """Validates a new run: choices the user may see, and parameters within the preset's rules."""

    preset = forms.ModelChoiceField(queryset=Preset.objects.none(), empty_label=None)
    base_model = forms.ModelChoiceField(queryset=BaseModel.objects.none())
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    name = forms.CharField(max_length=100, required=False)
    sample_prompts = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            f"One prompt a line (at most {MAX_SAMPLE_PROMPTS}); the trainer draws them every "
            "sample_every_n_epochs epochs and the run page shows the images as they appear. "
            "Left empty, the dataset's first captions are used."
        ),
    )

    evaluate_after = forms.BooleanField(
        required=False,
        label="Evaluate after training",
        help_text="When it succeeds, render its epochs at several strengths in the lab's "
        "ComfyUI/SwarmUI, beside the base model (where its node has one).",
    )

    # A random id per rendered form: the submit service makes at most one run per id, so a
    # form posted twice (double click, reload, back and submit) creates one run.
    form_token = forms.UUIDField(required=False, initial=uuid.uuid4, widget=forms.HiddenInput)

    def __init__(self, *args, user, submit: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.submit = submit  # a real submit needs the form's token; previews do not
        self.plan = None
        self.fields["preset"].queryset = Preset.objects.filter(enabled=True)
        raw = self.data.get("preset") if self.is_bound else self.initial.get("preset")
        self.preset = preset = chosen_preset(raw)
        models = BaseModel.objects.filter(enabled=True)
        if preset is not None:
            models = models.filter(architecture=preset.architecture)
            self.fields["preset"].initial = preset.pk
            self.fields["evaluate_after"].initial = preset.evaluate_after
        self.fields["base_model"].queryset = models
        if models.count() == 1:
            self.fields["base_model"].initial = models.first().pk
        self.fields["dataset"].queryset = Dataset.objects.visible_to(user).order_by("name")
        self.param_names = []
        if preset is not None:
            for p in open_params(preset, staff=user.is_staff):
                self.fields[f"p_{p.name}"] = _param_field(preset, p, staff=user.is_staff)
                self.param_names.append(p.name)

    def param_fields(self):
        """The bound fields of the open knobs, for the template."""
        return [self[f"p_{name}"] for name in self.param_names]

    def raw_params(self) -> dict:
        """The knob values as entered (blank numbers fall back to the preset)."""
        values = {}
        for name in self.param_names:
            value = self.cleaned_data.get(f"p_{name}")
            if PARAMS[name].kind != "bool" and value in (None, ""):
                continue
            values[name] = value
        return values

    def clean_sample_prompts(self) -> str:
        prompts = [line.strip() for line in self.cleaned_data["sample_prompts"].splitlines()]
        prompts = [p for p in prompts if p]
        if len(prompts) > MAX_SAMPLE_PROMPTS:
            raise forms.ValidationError(f"At most {MAX_SAMPLE_PROMPTS} sample prompts.")
        if any("--" in p for p in prompts):
            # sd-scripts reads "--w 4096" and the like in a prompt line: no raw options.
            raise forms.ValidationError("Prompt options such as --w or --n are not allowed.")
        return "\n".join(prompts)

    def clean(self):
        cleaned = super().clean()
        if self.submit and cleaned.get("form_token") is None:
            raise forms.ValidationError(
                "This form is out of date: reload the page, check the run and submit again."
            )
        preset, base_model = cleaned.get("preset"), cleaned.get("base_model")
        if preset is not None and preset != self.preset:
            raise forms.ValidationError(
                "The preset changed: check its parameters and submit again."
            )
        if preset is None or base_model is None:
            return cleaned
        if base_model.architecture != preset.architecture:
            self.add_error("base_model", "This base model does not match the preset.")
            return cleaned
        try:
            self.plan = plan_run(self.request())
        except ParamError as exc:
            for name, message in exc.errors.items():
                field = f"p_{name}"
                self.add_error(field if field in self.fields else None, f"{name}: {message}")
        except (ValidationError, PermissionDenied) as exc:
            self.add_error(None, "; ".join(getattr(exc, "messages", [str(exc)])))
        return cleaned

    def request(self) -> RunRequest:
        """The run this form asks for (the cleaned values)."""
        data = self.cleaned_data
        return RunRequest(
            owner=self.user,
            base_model=data["base_model"],
            dataset=data.get("dataset"),
            preset=data["preset"],
            params=self.raw_params(),
            sample_prompts=data.get("sample_prompts", ""),
            name=data.get("name", ""),
        )
