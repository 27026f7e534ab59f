# The e2e test guest: a multiboot kernel, booted with QEMU's -kernel.
#
# Its pattern: the 32-bit word at address 16 MiB + 4*i holds
# (i * 0x9E3779B1) ^ 0x5A5AA5A5 (little endian). Fixed addresses, below
# 16 MiB: 0xFFF000 ready marker (0xC0FFEE01 once the pattern is written),
# 0xFFF004 pass counter, 0xFFF008 the end of the pattern (an address),
# 0xFFF00C the dirty rate it runs with (DEFAULT, MAX or MiB/s), 0xFFF010
# the pages it dirtied with dirty=... (a count that wraps).
# It clears the marker and the counter first: RAM survives a reset, and a
# guest that boots again must show it (its counter starts over).
# e2e/guestcheck.py knows these addresses and checks them.
#
# Its interface is the multiboot command line (the domain's <cmdline>,
# QEMU's -append): "dirty=N", "dirty=max" or nothing.
#
# - Nothing (the default, what the e2e tests use): the pattern fills the
#   4 MiB at 16 MiB; then each pass increments the counter and writes it
#   into every 4 KiB page of the 8 MiB at 20 MiB, without pause.
# - dirty=...: the pattern fills all RAM from 16 MiB to the top of the RAM
#   below 4 GiB (multiboot's mem_upper: the domain's <memory>; QEMU's pc
#   machine puts 3 GiB of a 4 GiB guest there, the rest above 4 GiB stays
#   zero), and the guest dirties that memory page after page, round the
#   region, by writing back the pattern word it reads at the start of each
#   page: the page is dirty for the migration, its contents stay the
#   pattern, so the whole region stays checkable. The price: a page the
#   migration fails to send again still holds the pattern, so this mode's
#   check cannot catch a lost dirty page (the default mode's can't either
#   for its pattern; only its counter pages change).
#   - dirty=max: as fast as it can; the counter counts the passes.
#   - dirty=N (MiB/s, N >= 0): paced by the PIT (channel 0, mode 2,
#     interrupting every 1193 counts of its 1193182 Hz: 1000.15 ticks a
#     second; the counter counts ticks). The guest halts until a tick, adds
#     the ticks' PIT counts to a budget and dirties one page per
#     1193182 / N 256ths of a count while the budget lasts; a budget it
#     cannot spend is capped at 64 ticks, so a guest that falls behind runs
#     below N, never above. dirty=0 is an idle guest: it halts, and only
#     counts ticks. Ticks the vCPU misses (descheduled for more than a
#     tick: the PIC holds one) are lost, never caught up.

        .set PATTERN, 0x01000000                # the pattern starts at 16 MiB
        .set READY, 0x00FFF000
        .set COUNTER, 0x00FFF004
        .set TOP, 0x00FFF008
        .set RATE, 0x00FFF00C
        .set DIRTIED, 0x00FFF010
        .set DEFAULT, 0xFFFFFFFF                # RATE: no dirty= given
        .set MAX, 0xFFFFFFFE                    # RATE: dirty=max
        .set PIT_HZ, 1193182
        .set TICK, 1193                         # PIT counts a tick: 1000.15 Hz
        .set CAP, 64                            # ticks of budget at most

        .section .multiboot, "a"
        .align 4
        .long 0x1BADB002                        # multiboot magic
        .long 0x00000003                        # page-align, memory info
        .long -(0x1BADB002 + 0x00000003)        # checksum

        .text
        .globl _start
_start:                                         # %ebx: the multiboot info
        cli
        movl $stack_top, %esp
        movl $0, READY                          # not ready (yet, or again)
        movl $0, COUNTER                        # the counter starts over
        movl $0, DIRTIED

# The command line: the first "dirty=" and what follows it.
        movl $DEFAULT, RATE
        testl $4, (%ebx)                        # flags: a command line?
        jz 9f
        movl 16(%ebx), %esi                     # NUL-terminated
1:      cmpb $0, (%esi)
        je 9f
        cmpl $0x74726964, (%esi)                # "dirt"
        jne 2f
        cmpw $0x3D79, 4(%esi)                   # "y="
        je 3f
2:      incl %esi
        jmp 1b
3:      addl $6, %esi
        movl $MAX, RATE
        cmpb $'m', (%esi)                       # "max"
        je 9f
        xorl %eax, %eax                         # N, decimal
4:      movzbl (%esi), %ecx
        subl $'0', %ecx
        cmpl $9, %ecx
        ja 5f
        imull $10, %eax, %eax
        addl %ecx, %eax
        incl %esi
        jmp 4b
5:      movl %eax, RATE
9:

# The pattern's end: 20 MiB by default, else the top of the RAM below 4 GiB.
        movl $0x01400000, TOP
        cmpl $DEFAULT, RATE
        je 1f
        testl $1, (%ebx)                        # flags: memory info?
        jz 1f
        movl 8(%ebx), %eax                      # mem_upper: KiB above 1 MiB
        shll $10, %eax
        addl $0x00100000, %eax
        movl %eax, TOP

1:      movl $PATTERN, %edi                     # the pattern
        movl TOP, %edx
        subl %edi, %edx
        shrl $2, %edx                           # its words
        xorl %ecx, %ecx
2:      movl %ecx, %eax
        imull $0x9E3779B1, %eax, %eax
        xorl $0x5A5AA5A5, %eax
        movl %eax, (%edi,%ecx,4)
        incl %ecx
        cmpl %edx, %ecx
        jne 2b

        movl $0xC0FFEE01, READY                 # ready marker
        cmpl $DEFAULT, RATE
        je default
        cmpl $MAX, RATE
        je max
        jmp paced

# The default: the counter into every page of the 8 MiB at 20 MiB.
default:
        incl COUNTER                            # pass counter
        movl COUNTER, %eax
        movl $0x01400000, %edi                  # dirty region
        movl $2048, %ecx                        # 2048 pages = 8 MiB
1:      movl %eax, (%edi)
        addl $4096, %edi
        decl %ecx
        jnz 1b
        jmp default

# dirty=max: every page of the pattern, pass after pass.
max:    incl COUNTER
        movl $PATTERN, %edi
1:      movl (%edi), %eax                       # the page's first word,
        movl %eax, (%edi)                       # written back: a dirty page
        incl DIRTIED
        addl $4096, %edi
        cmpl TOP, %edi
        jb 1b
        jmp max

# dirty=N: the PIT interrupts 1000 times a second; %ebp the tick count of
# the last look, %esi the budget (256ths of a PIT count), %edi the next
# page, %ebx the cost of a page. An interrupt gate needs a GDT and an IDT
# of our own (multiboot leaves the GDTR undefined).
paced:  lgdt gdt_desc
        ljmp $0x08, $1f
1:      movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movw %ax, %fs
        movw %ax, %gs
        movl $tick, %eax                        # vector 0x20: tick
        movw %ax, idt + 0x20 * 8
        movw $0x08, idt + 0x20 * 8 + 2
        movw $0x8E00, idt + 0x20 * 8 + 4        # 32-bit interrupt gate
        shrl $16, %eax
        movw %ax, idt + 0x20 * 8 + 6
        lidt idt_desc
        movb $0x11, %al                         # the PICs: IRQs 0-15 at
        outb %al, $0x20                         # vectors 0x20-0x2F, only
        outb %al, $0xA0                         # IRQ 0 (the PIT) unmasked
        movb $0x20, %al
        outb %al, $0x21
        movb $0x28, %al
        outb %al, $0xA1
        movb $0x04, %al
        outb %al, $0x21
        movb $0x02, %al
        outb %al, $0xA1
        movb $0x01, %al
        outb %al, $0x21
        outb %al, $0xA1
        movb $0xFE, %al
        outb %al, $0x21
        movb $0xFF, %al
        outb %al, $0xA1
        movb $0x34, %al                         # PIT channel 0, lo/hi,
        outb %al, $0x43                         # mode 2, every TICK counts
        movw $TICK, %ax
        outb %al, $0x40
        movb %ah, %al
        outb %al, $0x40

        movl $1, %ebx                           # the cost of a page: for
        cmpl $0, RATE                           # N pages of 4 KiB per
        je 1f                                   # 1/256 s, PIT_HZ / N
        movl $PIT_HZ, %eax                      # 256ths of a count (N = 0:
        xorl %edx, %edx                         # never spent)
        divl RATE
        orl %eax, %eax
        jz 1f
        movl %eax, %ebx
1:      movl COUNTER, %ebp
        xorl %esi, %esi
        movl $PATTERN, %edi
        sti

2:      hlt                                     # until the next tick
        movl COUNTER, %eax
        movl %eax, %edx
        subl %ebp, %edx                         # ticks since the last look
        movl %eax, %ebp
        cmpl $0, RATE
        je 2b                                   # idle
        cmpl $CAP, %edx                         # the budget: at most CAP
        jbe 3f                                  # ticks' worth
        movl $CAP, %edx
3:      imull $TICK * 256, %edx, %edx
        addl %edx, %esi
        cmpl $CAP * TICK * 256, %esi
        jbe 4f
        movl $CAP * TICK * 256, %esi
4:      cmpl %ebx, %esi
        jb 2b
        subl %ebx, %esi
        movl (%edi), %eax                       # dirty one page, as above
        movl %eax, (%edi)
        incl DIRTIED
        addl $4096, %edi
        cmpl TOP, %edi
        jb 4b
        movl $PATTERN, %edi
        jmp 4b

tick:   incl COUNTER                            # IRQ 0: one more tick
        pushl %eax
        movb $0x20, %al                         # end of interrupt
        outb %al, $0x20
        popl %eax
        iret

        .data
        .align 8
gdt:    .quad 0                                 # flat 4 GiB segments
        .quad 0x00CF9A000000FFFF                # 0x08: code
        .quad 0x00CF92000000FFFF                # 0x10: data
gdt_desc:
        .word 3 * 8 - 1
        .long gdt
        .align 8
idt:    .fill 0x21 * 8, 1, 0                    # vectors 0x00-0x20
idt_desc:
        .word 0x21 * 8 - 1
        .long idt

        .bss
        .align 16
        .skip 4096
stack_top:
