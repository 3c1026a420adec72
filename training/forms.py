"""The new-run form: dataset, base model, preset and name; the preset's few student-facing
choices in plain words; every other knob it leaves open in a closed "Advanced" section.

Choosing a dataset proposes the trigger word, repeats, epochs and resolution from its data
(`proposals`): a proposed knob left empty takes the proposal, so the page, the live plan and
the submit agree. Cleaning the form plans the run (training.planning.plan_run), so the page
shows exactly the verdict the submit service will reach; `form.plan` holds the plan once the
form is valid. Nothing here writes.
"""

from __future__ import annotations

import uuid

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError

from datasets.lint import supported_resolution
from datasets.models import Dataset
from sdscripts.architectures import spec
from sdscripts.labels import BASIC, FROM_DATASET, label
from sdscripts.params import PARAMS, ParamError, bounds, default_for, params_for
from sdscripts.prompts import MAX_SAMPLE_PROMPTS
from sdscripts.steps import DEFAULT_EPOCHS, suggest_length
from training.models import GPU, BaseModel, Preset
from training.planning import RunRequest, plan_run
from training.quotas import quota_status
from training.selectors import unavailable_optimizers

# The quota caps (training.quotas) on the new-run form's knobs: option name → Quota field.
QUOTA_CAPS = {"resolution": "max_resolution", "max_train_epochs": "max_epochs"}


def open_params(preset: Preset, *, staff: bool = False) -> list:
    """The knobs a user may set under a preset (staff also get the staff-only ones)."""
    locked = set(preset.locked or ())
    return [
        p for p in params_for(preset.architecture) if p.name not in locked and (staff or p.student)
    ]


def preset_value(preset: Preset, name: str) -> object:
    """A knob's value under a preset: the preset's, else the architecture's default."""
    return (preset.values or {}).get(name, default_for(PARAMS[name], preset.architecture))


def _param_field(preset: Preset, p, *, staff: bool) -> forms.Field:
    initial = preset_value(preset, p.name)
    rule = None if staff else (preset.bounds or {}).get(p.name)
    lo, hi, choices = bounds(p, preset.architecture, rule)
    help_text = BASIC.get(p.name, p.help)
    if p.kind != "text" and (lo is not None or hi is not None):
        help_text += f" ({'' if lo is None else f'{lo:g}'} … {'' if hi is None else f'{hi:g}'})"
    common = {"label": label(p.name), "help_text": help_text, "initial": initial}
    common["required"] = False
    if p.kind == "text":
        field = forms.CharField(max_length=int(hi or 100), strip=True, **common)
    else:
        field = _typed_field(p, choices, lo, hi, common)
    field.option_name = p.name  # shown beside the plain label as a hint
    return field


def _typed_field(p, choices: tuple, lo, hi, common: dict) -> forms.Field:
    initial = common["initial"]
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


def dataset_proposals(
    preset: Preset, dataset: Dataset, *, staff: bool, batch=None, caps: dict | None = None
) -> dict:
    """Values the dataset proposes for the knobs it informs (sdscripts.labels.FROM_DATASET):
    its trigger word; repeats and epochs that give the architecture's target steps for its
    image count (the preset's epochs kept where they can be); the largest resolution up to
    the preset's that its images support (the lint's "tiny image" rule). `caps` (option
    name → largest value, the owner's quotas) lower the upper bounds."""
    arch = spec(preset.architecture)
    rules = {} if staff else dict(preset.bounds or {})
    locked = set(preset.locked or ())
    caps = caps or {}

    def limits(name: str) -> tuple:
        if name in locked:
            value = preset_value(preset, name)
            return (value, value)
        lo, hi = bounds(PARAMS[name], arch.key, rules.get(name))[:2]
        if caps.get(name) is not None:
            hi = caps[name] if hi is None else min(hi, caps[name])
        return lo, hi

    try:
        batch = int(batch or preset_value(preset, "train_batch_size") or 1)
    except (TypeError, ValueError):
        batch = int(preset_value(preset, "train_batch_size") or 1)
    repeats, epochs = suggest_length(
        dataset.image_count,
        batch,
        arch.target_steps,
        epochs=int(preset_value(preset, "max_train_epochs") or DEFAULT_EPOCHS),
        epoch_bounds=limits("max_train_epochs"),
        repeat_bounds=limits("num_repeats"),
    )
    # Never below half the preset's size: smaller images get the lint's warning instead.
    preferred = int(preset_value(preset, "resolution"))
    if caps.get("resolution") is not None and "resolution" not in locked:
        preferred = min(preferred, int(caps["resolution"]))
    resolution = supported_resolution(
        list(dataset.images.values_list("width", "height")),
        preferred=preferred,
        lowest=max(limits("resolution")[0] or 0, preferred // 2),
    )
    proposals = {
        "class_tokens": dataset.trigger_word or None,
        "num_repeats": repeats,
        "max_train_epochs": epochs,
        "resolution": resolution,
    }
    return {k: v for k, v in proposals.items() if k in FROM_DATASET and k not in locked}


def gpu_size_choices() -> list[tuple[str, str]]:
    """The GPU sizes a run's memory may be planned for: the lab's enabled GPUs."""
    rows = GPU.objects.filter(enabled=True, node__enabled=True).values_list("total_mib", "name")
    sizes: dict[int, set[str]] = {}
    for total, name in rows:
        sizes.setdefault(total, set()).add(name)
    choices = [("", "The lab's largest GPU")]
    for total in sorted(sizes, reverse=True):
        names = ", ".join(sorted(sizes[total]))
        choices.append((str(total), f"A {total / 1024:.0f} GB GPU ({names})"))
    return choices


def _pick(queryset, raw):
    """The row of `queryset` a request names by id, or None."""
    try:
        return queryset.filter(pk=int(raw)).first() if raw else None
    except (TypeError, ValueError):
        return None


def chosen_model_and_preset(raw_model, raw_preset) -> tuple[BaseModel | None, Preset | None]:
    """The base model and preset a request names. The base model decides: its
    architecture's presets are offered, the one named or else the first. Without a base
    model the preset named (or the first) decides, and the lab's only base model is taken
    when there is just one."""
    models = BaseModel.objects.filter(enabled=True)
    presets = Preset.objects.filter(enabled=True)
    model = _pick(models, raw_model)
    if model is None and not raw_model and not raw_preset and models.count() == 1:
        model = models.first()
    if model is not None:
        presets = presets.filter(architecture=model.architecture)
        return model, _pick(presets, raw_preset) or presets.first()
    return None, _pick(presets, raw_preset) or (None if raw_preset else presets.first())


class RunForm(forms.Form):
    """Validates a new run: choices the user may see, and parameters within the preset's rules."""

    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.none(), help_text="The images the LoRA learns from."
    )
    base_model = forms.ModelChoiceField(
        queryset=BaseModel.objects.none(), help_text="The model the LoRA adapts."
    )
    preset = forms.ModelChoiceField(
        queryset=Preset.objects.none(),
        empty_label=None,
        help_text="A recipe staff prepared; it decides the settings below.",
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Name of the LoRA",
        help_text="Shown on your runs and in the file name.",
    )
    sample_prompts = forms.CharField(
        required=False,
        max_length=2000,
        label="Prompts for sample images",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            f"One prompt a line (at most {MAX_SAMPLE_PROMPTS}); the trainer draws them as it "
            "goes and the run page shows the images as they appear. Left empty, the "
            "dataset's first captions are used."
        ),
    )
    gpu_mib = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Plan the memory for",
        help_text="Plan for a smaller GPU to start sooner with memory savers (slower steps).",
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
        self.quota = quota_status(user)
        source = self.data if self.is_bound else self.initial
        model, preset = chosen_model_and_preset(source.get("base_model"), source.get("preset"))
        self.chosen_model = model
        # `chosen_preset`, not `preset`, in templates: there `form.preset` is the field.
        self.preset = self.chosen_preset = preset
        models = BaseModel.objects.filter(enabled=True)
        presets = Preset.objects.filter(enabled=True)
        if model is not None:
            presets = presets.filter(architecture=model.architecture)
            self.fields["base_model"].initial = model.pk
        elif preset is not None:
            fitting = models.filter(architecture=preset.architecture)
            if fitting.count() == 1:
                self.fields["base_model"].initial = fitting.first().pk
        if preset is not None:
            self.fields["evaluate_after"].initial = preset.evaluate_after
        self.fields["base_model"].queryset = models
        self.fields["preset"].queryset = presets
        if preset is not None:
            self.fields["preset"].initial = preset.pk
        datasets = Dataset.objects.visible_to(user).order_by("name")
        self.fields["dataset"].queryset = datasets
        self.fields["gpu_mib"].choices = gpu_size_choices()
        self.param_names = []
        if preset is not None:
            for p in open_params(preset, staff=user.is_staff):
                self.fields[f"p_{p.name}"] = _param_field(preset, p, staff=user.is_staff)
                self.param_names.append(p.name)
        self._cap_fields()
        self.proposals = self._proposals(datasets)

    def quota_caps(self) -> dict[str, int]:
        """The owner's quota caps by sd-scripts option name (training.quotas)."""
        caps = {name: self.quota.cap(field) for name, field in QUOTA_CAPS.items()}
        return {name: cap for name, cap in caps.items() if cap is not None}

    def _cap_fields(self) -> None:
        """Lower the open knobs' upper bounds to the owner's quota caps, and say so."""
        for name, cap in self.quota_caps().items():
            field = self.fields.get(f"p_{name}")
            if field is None:
                continue
            current = field.widget.attrs.get("max")
            field.widget.attrs["max"] = f"{min(float(current), cap) if current else cap:g}"
            field.help_text += f" Your limit: {cap}."

    def _proposals(self, datasets) -> dict:
        """What the chosen dataset proposes (empty without one); an unbound form shows the
        proposals as its initial values."""
        raw = self.data.get("dataset") if self.is_bound else self.initial.get("dataset")
        try:
            dataset = datasets.filter(pk=int(raw)).first() if raw else None
        except (TypeError, ValueError):
            dataset = None
        if dataset is None or self.preset is None:
            return {}
        batch = self.data.get("p_train_batch_size") if self.is_bound else None
        proposals = dataset_proposals(
            self.preset, dataset, staff=self.user.is_staff, batch=batch, caps=self.quota_caps()
        )
        proposals = {k: v for k, v in proposals.items() if k in self.param_names}
        if not self.is_bound:
            for name, value in proposals.items():
                self.fields[f"p_{name}"].initial = value
        return proposals

    def param_fields(self):
        """The bound fields of the open knobs, for the template."""
        return [self[f"p_{name}"] for name in self.param_names]

    def basic_fields(self):
        """The preset's student-facing choices (sdscripts.labels.BASIC), in page order."""
        return [self[f"p_{name}"] for name in BASIC if name in self.param_names]

    def advanced_fields(self):
        """Every other open knob."""
        return [self[f"p_{name}"] for name in self.param_names if name not in BASIC]

    def advanced_errors(self) -> bool:
        """Whether a field of the Advanced section has an error (the page opens it then)."""
        names = [f.name for f in self.advanced_fields()] + ["sample_prompts", "gpu_mib"]
        return self.is_bound and any(name in self.errors for name in names)

    def raw_params(self) -> dict:
        """The knob values as entered: a blank number or text takes the dataset's proposal
        when there is one, else the preset's value."""
        values = {}
        for name in self.param_names:
            value = self.cleaned_data.get(f"p_{name}")
            if PARAMS[name].kind != "bool" and value in (None, ""):
                if name in self.proposals and self.proposals[name] is not None:
                    values[name] = self.proposals[name]
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
            budget_mib=data.get("gpu_mib"),
        )
