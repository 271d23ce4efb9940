"""``repcurate doctor``: MCT's quantization troubleshooting steps, run and measured automatically."""
from repcurate.commands.doctor.result import DoctorResult, Finding
from repcurate.commands.doctor.run import doctor

__all__ = ["DoctorResult", "Finding", "doctor"]
