"""Target support, laptop side: flashing the Pico, deploying to the Pi, an aarch64 CPython under
qemu-user. The firmware itself (board/pico, board/emulator) runs on the device, not here.

Never imported by flight/.
"""
