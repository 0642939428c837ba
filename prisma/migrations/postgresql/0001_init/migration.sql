-- CreateTable
CREATE TABLE "instance_meta" (
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "instance_meta_pkey" PRIMARY KEY ("key")
);

