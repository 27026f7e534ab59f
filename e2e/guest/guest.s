# The e2e test guest: a multiboot kernel, booted with QEMU's -kernel.
#
# It fills 4 MiB at 16 MiB with a pattern that depends only on the word's
# index (word i = (i * 0x9E3779B1) ^ 0x5A5AA5A5), sets a ready marker
# (0xC0FFEE01 at 0xFFF000), then loops for ever: each pass increments a
# counter at 0xFFF004 and writes it into every 4 KiB page of the 8 MiB at
# 20 MiB, so that the guest keeps dirtying memory during a migration.
# It clears the marker and the counter first: RAM survives a reset, and
# a guest that boots again must show it (its counter starts over).
# e2e/guestcheck.py knows these addresses and checks them.

        .section .multiboot, "a"
        .align 4
        .long 0x1BADB002                        # multiboot magic
        .long 0x00000003                        # page-align, memory info
        .long -(0x1BADB002 + 0x00000003)        # checksum

        .text
        .globl _start
_start:
        cli
        movl $stack_top, %esp
        movl $0, 0x00FFF000                     # not ready (yet, or again)
        movl $0, 0x00FFF004                     # the counter starts over

        movl $0x01000000, %edi                  # pattern region
        xorl %ecx, %ecx
1:      movl %ecx, %eax
        imull $0x9E3779B1, %eax, %eax
        xorl $0x5A5AA5A5, %eax
        movl %eax, (%edi,%ecx,4)
        incl %ecx
        cmpl $0x100000, %ecx                    # 1 Mi words = 4 MiB
        jne 1b

        movl $0xC0FFEE01, 0x00FFF000            # ready marker

2:      incl 0x00FFF004                         # pass counter
        movl 0x00FFF004, %eax
        movl $0x01400000, %edi                  # dirty region
        movl $2048, %ecx                        # 2048 pages = 8 MiB
3:      movl %eax, (%edi)
        addl $4096, %edi
        decl %ecx
        jnz 3b
        jmp 2b

        .bss
        .align 16
        .skip 4096
stack_top:
