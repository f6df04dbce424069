"""Pre-trade risk gate: limits, collars, positions, throttles and the kill switch."""

from .gate import LATENCY, PreTradeRisk
from .limits import RiskRegisterSignature, connect_registers

__all__ = ["PreTradeRisk", "LATENCY", "RiskRegisterSignature", "connect_registers"]
