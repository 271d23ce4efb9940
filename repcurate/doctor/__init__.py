"""``repcurate doctor``: MCT's quantization troubleshooting steps, run and measured automatically."""
from repcurate.doctor.result import DoctorResult, Finding
from repcurate.doctor.run import doctor

__all__ = ["DoctorResult", "Finding", "doctor"]
